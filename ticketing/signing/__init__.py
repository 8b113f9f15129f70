"""What we sign: ref tokens, our Message-IDs, and the secret behind both."""
