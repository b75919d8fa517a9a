"""Payment providers behind one interface; the sandbox is built in, a real one plugs in the same way."""
