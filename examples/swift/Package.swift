// swift-tools-version:6.0
// A Swift host of apixo, built and run against the simulator by `make test-swift-example`.
// Swift 6 language mode with warnings as errors: it also proves that the public API is clean
// under complete concurrency checking (Sendable requests, snapshots, errors and client).
import PackageDescription

let package = Package(
    name: "apixo-swift-example",
    dependencies: [
        // Named, because a path dependency is otherwise known by its folder name (the clone's).
        .package(name: "apixo", path: "../.."),
    ],
    targets: [
        .executableTarget(
            name: "ApixoExample",
            dependencies: [
                .product(name: "Apixo", package: "apixo"),
                .product(name: "ApixoLogging", package: "apixo"),
            ],
            swiftSettings: [.unsafeFlags(["-warnings-as-errors"])]),
    ],
    swiftLanguageModes: [.v6]
)
