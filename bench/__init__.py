"""Side-by-side benchmarks of zkdrift against zk-shell on generated config trees."""
