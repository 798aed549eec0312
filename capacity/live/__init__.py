"""Live fan-out: each worker reads each region's stream once and feeds its own websocket clients."""
