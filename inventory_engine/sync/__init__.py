"""The push path: drain each channel's change markers and send the latest values, within limits."""
