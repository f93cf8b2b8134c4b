// Shared by every fuzz target: inputs reach the code through a file in
// /dev/shm, exactly as a user's file would.
import Foundation

let fuzzDirectory: String = {
    let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    let path = base + "/streamlab-fuzz-\(getpid())"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}()

/// Writes the fuzz input to `name` inside the per-process directory and returns its URL.
func fuzzFile(_ data: UnsafePointer<UInt8>, _ size: Int, name: String) -> URL {
    let url = URL(fileURLWithPath: fuzzDirectory + "/" + name)
    FileManager.default.createFile(atPath: url.path, contents: Data(bytes: data, count: size))
    return url
}
