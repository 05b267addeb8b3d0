"""Images and their geometry: reading and decoding cutouts, cropping and the D4 augmentations, the source check (what
lies at an image's centre), and the synthetic hard cases it is measured on."""
