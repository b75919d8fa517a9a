"""Handlers for the events commerce consumes: catalog's answers and products, social live stats."""
