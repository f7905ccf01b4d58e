"""The packet trace engine: (NodeView, Packet) → Trace, hook by hook in the kernel's order."""
