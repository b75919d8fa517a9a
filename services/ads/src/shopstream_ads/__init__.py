"""Ads: campaigns, auctions, invalid traffic, attribution without device ids, reports."""
