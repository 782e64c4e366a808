from shared.polling import eventually

__all__ = ["eventually"]
