"""Commerce service: orders, payments, fulfilment, refunds, live shopping, commissions."""
