"""Python (asyncio) client of the aitw worker protocol: see client.AIClient."""
from .client import AIClient, AIError, parse_endpoint
from .framing import encode_framed, split_framed
from .proto import pb

__all__ = ["AIClient", "AIError", "parse_endpoint", "encode_framed", "split_framed", "pb"]
