"""Small shared helpers with no project imports: redaction, retry delays, pacing."""
