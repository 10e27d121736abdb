// Memory-maps a file as an external ArrayBuffer; the buffer's finalizer unmaps it. The mapping is
// private copy-on-write, so a stray write from JS changes only this process's copy, never the file.
#include <cerrno>
#include <cstring>
#include <string>

#include "args.h"
#include "kernels.h"

#if !defined(_WIN32)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace flower {
namespace {

Napi::Value MapFile(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "file must be a string");
  const std::string file = info[0].As<Napi::String>();
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
  if (size == 0) {
    close(fd);
    throw Napi::RangeError::New(env, file + ": empty file, nothing to map");
  }
  void* data = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  const int error = errno;
  close(fd);  // the mapping keeps the file open
  if (data == MAP_FAILED) throw Napi::Error::New(env, file + ": mmap failed: " + std::strerror(error));
  return Napi::ArrayBuffer::New(env, data, size, [](Napi::Env, void* mapped, size_t* length) {
    munmap(mapped, *length);
    delete length;
  }, new size_t(size));
#endif
}

}  // namespace

void register_mmap(Napi::Env env, Napi::Object exports) {
  exports.Set("mapFile", Napi::Function::New(env, MapFile, "mapFile"));
}

}  // namespace flower
