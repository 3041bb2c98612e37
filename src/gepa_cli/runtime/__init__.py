"""Everything that talks to the outside: container client and launcher, proposers, cache."""
