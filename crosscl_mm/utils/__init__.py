from .dist import batch_shuffle, batch_unshuffle, concat_all_gather, get_world_size

__all__ = ['batch_shuffle', 'batch_unshuffle', 'concat_all_gather', 'get_world_size']
