"""The closed loop (white paper ch. 5): disposition engine, deadlines, circuit-breaker gate and
notifications. See docs/loop.md."""
