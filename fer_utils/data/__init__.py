"""Data: faces in, uint8 arrays and labels out.

Where faces come from (a folder or a zip: :mod:`.sources`), how a tree of them is read
(RAF-DB's three layouts, FER2013, any ``<Class>/`` tree: :mod:`.layouts`), decoding and the
on-disk cache (:mod:`.datasets`), the synthetic stand-in set (:mod:`.synthetic`, drawn by
:mod:`.faces_draw`) and UTKFace's file names (:mod:`.utkface`).

May import: the top-level leaves (errors, atomic, paths, progress, stats) only.
"""
