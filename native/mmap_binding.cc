// Memory-maps a file as an external ArrayBuffer; the buffer's finalizer unmaps it. The mapping is
// private copy-on-write, so a stray write from JS changes only this process's copy, never the file.
// Node builds external array buffers as Buffers, so they are capped at buffer.constants.MAX_LENGTH
// (4 GiB on Node 20); the caller passes that cap and larger files are refused up front, because a
// failed creation frees the finalizer data inside Node and must not be cleaned up again here.
#include <cerrno>
#include <cstring>
#include <string>

#include "args.h"
#include "bindings.h"

#if !defined(_WIN32)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace flower {
namespace {

#if !defined(_WIN32)
void unmap(napi_env, void* data, void* length) { munmap(data, reinterpret_cast<size_t>(length)); }
#endif

// mapFile(file, maxLength) -> ArrayBuffer over the whole file.
Napi::Value MapFile(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "file must be a string");
  const std::string file = info[0].As<Napi::String>();
  const int64_t max_length = int_arg(info, 1, "maxLength", 1, INT64_MAX);
#if defined(_WIN32)
  throw Napi::Error::New(env, file + ": memory mapping is not implemented on Windows");
#else
  const int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Napi::Error::New(env, file + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int error = errno;
    close(fd);
    throw Napi::Error::New(env, file + ": " + std::strerror(error));
  }
  const size_t size = size_t(st.st_size);
  if (size == 0 || int64_t(size) > max_length) {
    close(fd);
    throw Napi::RangeError::New(env,
                                file + (size == 0 ? ": empty file, nothing to map"
                                                  : ": larger than the biggest external buffer this Node.js allows"));
  }
  void* data = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  const int error = errno;
  close(fd);  // the mapping keeps the file open
  if (data == MAP_FAILED) throw Napi::Error::New(env, file + ": mmap failed: " + std::strerror(error));
  napi_value buffer;
  if (napi_create_external_arraybuffer(env, data, size, unmap, reinterpret_cast<void*>(size), &buffer) != napi_ok)
    throw Napi::Error::New(env, file + ": could not wrap the mapping in an ArrayBuffer");
  return Napi::Value(env, buffer);
#endif
}

}  // namespace

void register_mmap(Napi::Env env, Napi::Object exports) {
  exports.Set("mapFile", Napi::Function::New(env, MapFile, "mapFile"));
}

}  // namespace flower
