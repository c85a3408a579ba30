"""The kazoo adapter: typed functions over an untyped client."""
