"""Commerce's use cases (issue 17's shape): one module per aggregate or capability; the gRPC
servicer and the event routes only translate and call them."""
