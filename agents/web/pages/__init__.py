"""What pages look like: rendering, charts, the inbox script. No SQL, no requests."""
