"""Commerce domain: the order state machine and money rules, pure and without I/O."""
