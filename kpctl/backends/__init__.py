"""The only code that touches the kernel or runs programs (plus the snapshot reader)."""
