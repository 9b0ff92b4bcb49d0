"""Who may do what: accounts with their roles and languages, passwords, and sign-in sessions."""
