//! What a caught panic said, for errors that report a worker thread's failure instead of
//! taking the process down with it.

/// The text a panic carried (`panic!` with a literal or with a formatted message).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

#[cfg(test)]
mod tests {
    use super::panic_message;

    #[test]
    fn the_message_of_a_literal_and_of_a_formatted_panic() {
        let literal = std::panic::catch_unwind(|| panic!("worker gone")).unwrap_err();
        assert_eq!(panic_message(literal.as_ref()), "worker gone");
        let port = 4001;
        let formatted = std::panic::catch_unwind(|| panic!("port {port} closed")).unwrap_err();
        assert_eq!(panic_message(formatted.as_ref()), "port 4001 closed");
        let other = std::panic::catch_unwind(|| std::panic::panic_any(7u8)).unwrap_err();
        assert_eq!(panic_message(other.as_ref()), "a panic without a message");
    }
}
