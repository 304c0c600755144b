"""Pictures the front-ends share: images with overlays (:mod:`.overlay`), 3D scenes (:mod:`.scene3d`),
case previews (:mod:`.preview`) and the one data-URL encoder (:mod:`.encode`)."""
