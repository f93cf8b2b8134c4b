// swift-tools-version: 6.0
import PackageDescription

// Vector code generation. On x86_64 the kernels are written with SIMD8<Float>
// and need AVX2 + FMA to compile to real vector instructions; without these flags
// every `addingProduct` lane becomes a call to `fmaf`, about 100x slower.
// A CPU without AVX2/FMA is refused at start-up with a clear message
// (Sources/CStreamLabSupport); `STREAMLAB_PORTABLE=1 swift build` builds a slower
// binary that runs anywhere (0, empty or unset: the fast one). On arm64, NEON is
// the baseline and needs no flag. Tests/StreamLabTests/PortableBuildTests.swift builds both ways.
let portable = ["1", "true", "yes"].contains(Context.environment["STREAMLAB_PORTABLE"]?.lowercased() ?? "")
var vectorFlags: [SwiftSetting] = []
#if arch(x86_64)
if !portable {
    vectorFlags = [.unsafeFlags(["-Xcc", "-mavx2", "-Xcc", "-mfma", "-Xcc", "-mf16c"])]
}
#endif

let package = Package(
    name: "StreamLab",
    products: [
        .library(name: "StreamLab", targets: ["StreamLab"]),
        .executable(name: "stream-probe", targets: ["stream-probe"]),
        .executable(name: "stream-bench", targets: ["stream-bench"]),
    ],
    targets: [
        .target(
            name: "CStreamLabSupport",
            cSettings: portable ? [.define("STREAMLAB_PORTABLE")] : []
        ),
        .target(
            name: "StreamLab",
            dependencies: ["CStreamLabSupport"],
            // The library is optimized in debug builds too: `swift test` runs real
            // workloads (the bundled models' whole held-out text, gradient parity)
            // that unoptimized SIMD code would make 50-100x slower.
            swiftSettings: vectorFlags + [.unsafeFlags(["-O"], .when(configuration: .debug))]
        ),
        .executableTarget(
            name: "stream-probe",
            dependencies: ["StreamLab"]
        ),
        .executableTarget(
            name: "stream-bench",
            dependencies: ["StreamLab"],
            path: "Benchmarks/stream-bench",
            swiftSettings: vectorFlags + [.swiftLanguageMode(.v5)]
        ),
        .testTarget(
            name: "StreamLabTests",
            // The CLI tests run the built `stream-probe`, so the tests depend on it.
            dependencies: ["StreamLab", "stream-probe"],
            swiftSettings: vectorFlags
        ),
    ]
)
