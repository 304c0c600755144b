"""The simulator: C-arm and probe geometry, fluoroscopy and ultrasound, the needle, sessions, front-ends."""
