import { useEffect } from "react";
import { PasswordSection, ProfileSection } from "../components/account-profile.tsx";
import { LinkedSignInsSection, SessionsSection } from "../components/account-sessions.tsx";
import { TwoFactorSection } from "../components/account-two-factor.tsx";
import { usePageTitle } from "../components/page-title.ts";
import { useMe } from "../components/session.ts";

/** `/account`: the person's own profile, password, two-factor, sessions and linked sign-ins. */
export function AccountPage() {
  usePageTitle("Your account");
  const me = useMe();
  // `/account#two-factor` (from a workspace that requires it) scrolls to that section once it is drawn.
  useEffect(() => {
    const id = window.location.hash.slice(1);
    if (id) document.getElementById(id)?.scrollIntoView();
  }, []);
  if (!me.data) return null;
  return (
    <div className="account-page">
      <h1>Your account</h1>
      <nav aria-label="Account sections" className="account-nav">
        <a href="#profile">Profile</a>
        <a href="#password">Password</a>
        <a href="#two-factor">Two-factor</a>
        <a href="#sessions">Sessions</a>
        <a href="#linked-sign-ins">Linked sign-ins</a>
      </nav>
      <ProfileSection user={me.data.user} />
      <PasswordSection />
      <TwoFactorSection />
      <SessionsSection />
      <LinkedSignInsSection />
    </div>
  );
}
