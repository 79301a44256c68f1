//! Identifiers the server hands out: connection ids (which double as the suffix of the private
//! `conn:<id>` channel) and the ids of server-made records such as chat messages and payments.
//!
//! They live in core because every layer needs them (transports name connections, apps name
//! messages) and neither may import the other.

/// A fresh id: 20 random alphanumerics (≈119 bits). It must be unguessable, because knowing a
/// connection id is what lets a client read `conn:<id>`.
pub fn new_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_long_alphanumeric_and_distinct() {
        let a = new_id();
        let b = new_id();
        assert_eq!(a.len(), 20);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}
