package csinode

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
	mount "k8s.io/mount-utils"
)

// isMountPoint reports whether path is a mount point; a missing path is not one.
func (s *Server) isMountPoint(path string) (bool, error) {
	mnt, err := s.mounter.IsMountPoint(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check whether %s is a mount point: %w", path, err)
	}
	return mnt, nil
}

// mountedDevice returns the device mounted at path ("" when path is not a mount point).
func (s *Server) mountedDevice(path string) (string, error) {
	mnt, err := s.isMountPoint(path)
	if err != nil || !mnt {
		return "", err
	}
	dev, _, err := mount.GetDeviceNameFromMount(s.mounter, path)
	if err != nil {
		return "", fmt.Errorf("find the device mounted at %s: %w", path, err)
	}
	return dev, nil
}

// detach lazily unmounts path (MNT_DETACH): the mount disappears from the tree at once and the
// file system is released when its last user goes. It is how a mount of a dead device is
// replaced: a Pod that still has it open keeps getting EIO, nothing else sees it. A path that is
// not a mount point, or is missing, is not an error.
func detach(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return fmt.Errorf("lazy unmount of %s: %w", path, err)
}

// cleanup unmounts path and removes it (a directory or a file). When the plain unmount fails —
// typically the mount of a device that died with a previous daemon — it detaches the mount
// lazily and removes the path.
func (s *Server) cleanup(path string) error {
	err := mount.CleanupMountPoint(path, s.mounter, true)
	if err == nil {
		return nil
	}
	s.log.Info("unmount failed, detaching lazily", "path", path, "error", err.Error())
	if derr := detach(path); derr != nil {
		return errors.Join(err, derr)
	}
	if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		return fmt.Errorf("remove %s after unmounting it: %w", path, rerr)
	}
	return nil
}

// bindMount bind-mounts source onto target (which must exist), read-only when readonly, with
// extra mount options.
func (s *Server) bindMount(source, target string, readonly bool, options []string) error {
	opts := append([]string{"bind"}, options...)
	if readonly {
		opts = append(opts, "ro")
	}
	if err := s.mounter.Mount(source, target, "", opts); err != nil {
		return fmt.Errorf("bind-mount %s at %s: %w", source, target, err)
	}
	return nil
}

// ensureFile creates path as an empty regular file (and its parent directories) if missing: the
// mount point of a block publish target.
func ensureFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("create the parent of %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o640)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return f.Close()
}
