"""E-mail: the invitation mail, sending through an SMTP relay, the embedded mail server that
keeps every message, and the SMTP server that takes complaints."""
