// swift-tools-version:6.1
import PackageDescription

/// Settings every CTBus target shares: Swift 6 language mode plus the upcoming features the
/// design asks for (explicit `any`, imports that say what a file uses).
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// What a whole bus in one process needs: the local bus, the benchmark and the test support
/// each build on it.
let busModules: [Target.Dependency] = [
    "ZeroMQ", "CTBusSchema", "CTBusPolicy", "CTBusJournal", "CTBusBroker", "CTBusNode",
    .product(name: "CoreMetrics", package: "swift-metrics"),
    .product(name: "Logging", package: "swift-log"),
    .product(name: "SwiftProtobuf", package: "swift-protobuf"),
    .product(name: "Crypto", package: "swift-crypto"),
]

let package = Package(
    name: "CTBus",
    products: [
        .executable(name: "ctbus", targets: ["ctbus"]),
        .library(name: "ZeroMQ", targets: ["ZeroMQ"]),
        .library(name: "CTBusSchema", targets: ["CTBusSchema"]),
        .library(name: "CTBusPolicy", targets: ["CTBusPolicy"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        .package(url: "https://github.com/swiftcsv/SwiftCSV", from: "0.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.5.0"),
        .package(url: "https://github.com/vapor/multipart-kit", from: "4.7.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CZeroMQ",
            providers: [.apt(["libzmq3-dev"])]
        ),
        .target(name: "ZeroMQ", dependencies: ["CZeroMQ"], swiftSettings: strictSettings),
        .target(name: "CTBusMetricNames", swiftSettings: strictSettings),
        .target(
            name: "CTBusSchema",
            dependencies: [
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["Generated/SOURCES.sha256"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "CTBusPolicy",
            dependencies: ["CTBusSchema", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                           .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "CTBusTrace",
            dependencies: ["CTBusSchema", "CTBusPolicy", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "CTBusConsole",
            dependencies: [
                "CTBusSchema", "CTBusPolicy", "CTBusJournal", "CTBusTrace", "CTBusNode", "CTBusMetrics", "CTBusMetricNames", "CTBusNotify",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "HummingbirdAuth", package: "hummingbird-auth"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "MultipartKit", package: "multipart-kit"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "CTBusMetrics",
            dependencies: [
                "CTBusMetricNames",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // The broker's HTTP side: /metrics, /health, /ready and /status beside the broker.
        .target(
            name: "CTBusBrokerHTTP",
            dependencies: [
                "CTBusSchema", "CTBusPolicy", "CTBusJournal", "CTBusBroker", "CTBusMetrics", "CTBusMetricNames",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "CTBusJournal",
            dependencies: [
                "CTBusSchema",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "CTBusBroker",
            dependencies: [
                "ZeroMQ", "CTBusSchema", "CTBusPolicy", "CTBusJournal", "CTBusMetricNames",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strictSettings
        ),
        // Notifications of arriving messages: what they may say, mail through sendmail, signed
        // webhooks, and the daemon's sender with its retries.
        .target(
            name: "CTBusNotify",
            dependencies: [
                "CTBusSchema", "CTBusJournal", "CTBusMetricNames",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "CTBusNode",
            dependencies: [
                "CTBusMetricNames", "CTBusNotify",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                "ZeroMQ", "CTBusSchema", "CTBusPolicy", "CTBusJournal",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftCSV", package: "SwiftCSV"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strictSettings
        ),
        // A whole bus in one process over loopback (broker, nodes, keys, registry, sample
        // messages, bounded waits): product code the demo, the benchmark and the tests share.
        .target(
            name: "CTBusLocal",
            dependencies: busModules,
            swiftSettings: strictSettings
        ),
        // `ctbus bench`: the scenarios, the raw libzmq baseline and the report.
        .target(
            name: "CTBusBench",
            dependencies: ["CTBusLocal", .product(name: "Histogram", package: "hdrhistogram-swift")] + busModules,
            swiftSettings: strictSettings
        ),
        // Test support only test targets link: a hostile broker, raw clients, journal filling.
        .target(
            name: "CTBusTesting",
            dependencies: ["CTBusLocal"] + busModules,
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "ctbus",
            dependencies: [
                "ZeroMQ", "CTBusSchema", "CTBusPolicy", "CTBusJournal", "CTBusBroker", "CTBusNode", "CTBusTrace", "CTBusConsole",
                "CTBusMetrics", "CTBusBrokerHTTP", "CTBusLocal", "CTBusBench", "CTBusNotify",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strictSettings
        ),
        // One step of a message's way through the bus, run in one thread for callgrind
        // (Tests/perf/callgrind-steps.sh). Not a `ctbus` subcommand: valgrind stops on an async
        // main (libdispatch's signal thread), and `ctbus` has one.
        .executableTarget(name: "ctbus-steps", dependencies: ["CTBusBench"], swiftSettings: strictSettings),
        .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ"], swiftSettings: strictSettings),
        // The protocol cores, state table by state table: no socket, no store, no wait.
        .testTarget(
            name: "CTBusCoreTests",
            dependencies: [
                "ZeroMQ", "CTBusSchema", "CTBusPolicy", "CTBusJournal", "CTBusBroker", "CTBusNode", "CTBusLocal",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CTBusSchemaTests",
            dependencies: ["CTBusSchema", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CTBusPolicyTests",
            dependencies: [
                "CTBusPolicy", "CTBusSchema", "CTBusTesting", "CTBusLocal",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CTBusTraceTests",
            dependencies: [
                "CTBusTrace", "CTBusSchema", "CTBusTesting", "CTBusLocal",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CTBusIntegrationTests",
            dependencies: [
                "ZeroMQ", "CTBusSchema", "CTBusPolicy", "CTBusJournal", "CTBusBroker", "CTBusNode", "CTBusTrace", "CTBusConsole",
                "CTBusMetrics", "CTBusBrokerHTTP", "CTBusTesting", "CTBusLocal", "CTBusBench", "CTBusNotify",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strictSettings
        ),
    ]
)
