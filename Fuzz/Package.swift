// swift-tools-version:6.1
// The libFuzzer target over the broker's frame decoding and admission (validation, role and
// need-to-know rules, recipient decisions, redaction). A package of its own so that the main
// package's builds never need the fuzzer runtime. Run it with Fuzz/run.sh.
import PackageDescription

let package = Package(
    name: "CTBusFuzz",
    dependencies: [
        .package(name: "CTBus", path: ".."),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        .executableTarget(
            name: "CTBusFrameFuzzer",
            dependencies: [
                .product(name: "CTBusSchema", package: "CTBus"),
                .product(name: "CTBusPolicy", package: "CTBus"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "CTBusFuzzSeeds",
            dependencies: [
                .product(name: "CTBusSchema", package: "CTBus"),
                .product(name: "CTBusPolicy", package: "CTBus"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
    ]
)
