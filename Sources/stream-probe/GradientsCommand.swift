import Foundation
import StreamLab

enum GradientsCommand {
    static let spec = CommandSpec(name: "gradients", summary: "", usage: "", options: [])
    static func run(_ args: ParsedArguments) throws { throw UsageError("gradients: not yet") }
}
