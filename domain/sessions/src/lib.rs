//! Séance sessions domain (rooms, messages, broker port): types land with the séance rooms.
