//! An order-independent digest of a collection's documents, so a restore (whose read order may
//! differ) can be compared with the backup.

use sha2::{Digest as _, Sha256};

/// The sum, modulo 2^256, of the SHA-256 of each document's BSON bytes, and their count. A sum
/// (not XOR) so that two equal documents do not cancel out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentsDigest {
    sum: [u64; 4],
    count: u64,
}

impl DocumentsDigest {
    /// Adds one document's bytes.
    pub fn add(&mut self, document: &[u8]) {
        let hash = Sha256::digest(document);
        let mut carry = 0u128;
        for (lane, chunk) in self.sum.iter_mut().zip(hash.chunks_exact(8)).rev() {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(chunk);
            let total = u128::from(*lane) + u128::from(u64::from_be_bytes(bytes)) + carry;
            *lane = total as u64;
            carry = total >> 64;
        }
        self.count += 1;
    }

    /// How many documents were added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The digest as 64 hex digits.
    pub fn hex(&self) -> String {
        self.sum.iter().map(|lane| format!("{lane:016x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_does_not_matter_but_duplicates_do() {
        let (mut a, mut b, mut c) = Default::default();
        let (x, y): (&[u8], &[u8]) = (b"x", b"y");
        DocumentsDigest::add(&mut a, x);
        DocumentsDigest::add(&mut a, y);
        DocumentsDigest::add(&mut b, y);
        DocumentsDigest::add(&mut b, x);
        DocumentsDigest::add(&mut c, x);
        DocumentsDigest::add(&mut c, x);
        let (a, b, c): (DocumentsDigest, DocumentsDigest, DocumentsDigest) = (a, b, c);
        assert_eq!(a.hex(), b.hex());
        assert_ne!(a.hex(), c.hex());
        assert_eq!(a.count(), 2);
    }
}
