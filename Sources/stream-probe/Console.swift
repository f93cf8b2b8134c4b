import Foundation

/// The terminal streams, with every write checked: a failed standard output
/// (a full disk, a closed file) is an error the command reports on standard
/// error and exits 1 for; a failed standard error is ignored (there is nowhere
/// left to report it), never a trap.
enum Console {
    /// Writes `text` to standard output (unbuffered, whole).
    static func out(_ text: String) throws {
        if let reason = writeAll(1, text) { throw ConsoleError(description: "cannot write to standard output: \(reason)") }
    }

    /// Writes `text` to standard error; failures are ignored.
    static func err(_ text: String) {
        _ = writeAll(2, text)
    }

    /// Writes every byte of `text` to `fd`; the reason when it fails.
    private static func writeAll(_ fd: Int32, _ text: String) -> String? {
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBytes { buffer -> String? in
            var offset = 0
            while offset < buffer.count {
                let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return String(cString: strerror(errno))
                }
                offset += n
            }
            return nil
        }
    }
}

struct ConsoleError: Error, CustomStringConvertible {
    let description: String
}
