// swift-tools-version:5.9
// apixo: a Swift core (module Apixo, no Foundation) over libcurl and jansson, exported to C as
// libapixo.so (target ApixoC, @_cdecl), plus the `apixo` command-line tool.
import PackageDescription

let package = Package(
    name: "apixo",
    products: [
        // libapixo.so: the C ABI. `make` links it with -static-stdlib and a version script.
        .library(name: "apixo", type: .dynamic, targets: ["ApixoC"]),
        // The Swift API, for Swift hosts.
        .library(name: "Apixo", targets: ["Apixo"]),
        // swift-log for Swift hosts (ClientOptions.log(to:)); apart, so libapixo.so never links it.
        .library(name: "ApixoLogging", targets: ["ApixoLogging"]),
        // Installed as `apixo` by `make install`.
        .executable(name: "apixo-cli", targets: ["ApixoCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl",
                       providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CJansson", pkgConfig: "jansson",
                       providers: [.apt(["libjansson-dev"])]),
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis",
                       providers: [.apt(["libhiredis-dev"])]),
        // fork() safety: a pthread_atfork handler and a constructor (C, see fork.c). DWARF 4:
        // the valgrind of Debian 12 (3.19) gives up on the whole library at one DWARF 5 unit.
        .target(name: "CApixoFork", cSettings: [.unsafeFlags(["-gdwarf-4"])]),
        .target(name: "Apixo", dependencies: ["CCurl", "CJansson", "CHiredis", "CApixoFork"]),
        .target(name: "ApixoC", dependencies: ["Apixo"],
                exclude: ["apixo.map"],
                linkerSettings: [
                    // Export apixo_* only, under a stable soname. lld, unlike gold, leaves the
                    // hidden Swift symbols out of the dynamic symbol table altogether.
                    .unsafeFlags(["-use-ld=lld", "-Xlinker", "--version-script=\(Context.packageDirectory)/Sources/ApixoC/apixo.map",
                                  "-Xlinker", "-soname=libapixo.so.0",
                                  // Smaller (issue #14): identical code folded. Not
                                  // `-z pack-relative-relocs`: DT_RELR needs glibc 2.36
                                  // (GLIBC_ABI_DT_RELR), and Ubuntu 22.04 has 2.35.
                                  "-Xlinker", "--icf=all"]),
                ]),
        .executableTarget(name: "ApixoCLI",
                          dependencies: ["Apixo",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          exclude: ["README.md"]),
        .target(name: "ApixoLogging", dependencies: ["Apixo", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "ApixoTests", dependencies: ["Apixo"]),
        // `make bench-policy`: the Scheduler and poll policies in simulated time (a test target,
        // so it reaches the internal core and stays out of libapixo.so). Under `swift test` it
        // runs one seed and checks the invariants; APIXO_POLICY_BENCH_SEEDS=N prints the table.
        .testTarget(name: "ApixoPolicyBench", dependencies: ["Apixo"]),
        .testTarget(name: "ApixoLoggingTests", dependencies: ["ApixoLogging"]),
    ]
)
