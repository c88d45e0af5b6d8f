//! User and group names of ids, through NSS, cached.

use std::collections::HashMap;
use std::ffi::CStr;
use std::time::{Duration, Instant};

/// uid → user name (or gid → group name) through the passwd (group)
/// database (NSS), cached. Unknown ids are asked again after a while, in case
/// the directory catches up.
#[derive(Default)]
pub(super) struct UserNames {
    cache: HashMap<u32, (Option<String>, Instant)>,
    groups: bool,
}

impl UserNames {
    const RETRY_UNKNOWN: Duration = Duration::from_secs(300);

    /// Names of groups (gids) instead of users.
    pub(super) fn groups() -> Self {
        UserNames { groups: true, ..Default::default() }
    }

    pub(super) fn get(&mut self, uid: u32) -> Option<String> {
        if let Some((name, at)) = self.cache.get(&uid)
            && (name.is_some() || at.elapsed() < Self::RETRY_UNKNOWN)
        {
            return name.clone();
        }
        let name = if self.groups { lookup_group(uid) } else { lookup_user(uid) };
        self.cache.insert(uid, (name.clone(), Instant::now()));
        name
    }
}

fn lookup_user(uid: u32) -> Option<String> {
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    loop {
        let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        return Some(unsafe { CStr::from_ptr(pwd.pw_name) }.to_string_lossy().into_owned());
    }
}

fn lookup_group(gid: u32) -> Option<String> {
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut result: *mut libc::group = std::ptr::null_mut();
    loop {
        let rc = unsafe { libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr(), buf.len(), &mut result) };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || result.is_null() || grp.gr_name.is_null() {
            return None;
        }
        return Some(unsafe { CStr::from_ptr(grp.gr_name) }.to_string_lossy().into_owned());
    }
}
