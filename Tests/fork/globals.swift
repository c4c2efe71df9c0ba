import Glibc

// Lazy globals (a file other than main.swift): each is initialised through swift_once.
let warm: Int = { Int(getpid()) }()
let slow: Int = { usleep(300_000); return 42 }()
