"""Outbound network clients (mail, webhook delivery): what Rhythm sends to other servers."""
