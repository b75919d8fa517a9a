"""Handlers for the events catalog consumes (commerce.orders.v1)."""
