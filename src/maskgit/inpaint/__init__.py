"""Inpainting folders of files: finding inputs (`jobs`), the lab's layout (`lab_layout`), running a
filler over them (`run`), the classical baselines (`baselines`) and decoding-trace pictures (`trace`)."""
