"""signvideo: rapid-access sign-language video interpreting for many public bodies."""

__version__ = "0.1.0"
