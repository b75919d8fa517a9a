"""Creator-score's use cases (issue 17's shape): one module per capability; the gRPC servicer and
the stream's routes only translate and call them."""
