"""The bottom layer: errors, atomic files, machine faults, redaction and shared types; imports nothing of teachloop."""
