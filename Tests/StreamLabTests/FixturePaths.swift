import Foundation

/// Locations of the committed fixtures, found from this file's path so tests
/// run from any working directory.
enum FixturePaths {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let root = packageRoot.appendingPathComponent("Fixtures")
    static let models = root.appendingPathComponent("models")
    static let reference = root.appendingPathComponent("reference")
    static let tokenizers = root.appendingPathComponent("tokenizers")
}
