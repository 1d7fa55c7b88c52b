// A header found through include_dirs: the cache key must cover it.
#define SCALE 2.0f
