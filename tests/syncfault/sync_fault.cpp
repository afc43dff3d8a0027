// A disk that fails its syncs, for the end-to-end test of a failed group
// commit: loaded into otpboxd with LD_PRELOAD, fdatasync and fsync answer
// EIO while the file named by OTPBOX_SYNC_FAULT_FILE exists, and call the
// C library's own otherwise. No real disk can be made to fail a sync on
// demand, so this stands in for one.

#include <dlfcn.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>

namespace {

using SyncCall = int (*)(int);

bool failing() {
    const char* marker = std::getenv("OTPBOX_SYNC_FAULT_FILE");
    struct stat info {};
    return marker != nullptr && ::stat(marker, &info) == 0;
}

int sync_or_fail(const char* name, int fd) {
    if (failing()) {
        errno = EIO;
        return -1;
    }
    static_assert(sizeof(void*) == sizeof(SyncCall));
    auto* real = reinterpret_cast<SyncCall>(::dlsym(RTLD_NEXT, name));
    return real == nullptr ? -1 : real(fd);
}

}  // namespace

extern "C" int fdatasync(int fd) {
    return sync_or_fail("fdatasync", fd);
}

extern "C" int fsync(int fd) {
    return sync_or_fail("fsync", fd);
}
