"""Tickets as their holders carry them: a QR code of the check-in code."""
